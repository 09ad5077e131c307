//! The MiniStack harness itself: the seeded bucket, session-policy enforcement, and the
//! STS recorder (forwarding with the signature intact, forced errors, stop).

use crate::support::ministack::{
    AwsCreds, DOCUMENTS, MiniStack, ROLE_ARN, StsRecorder, document_body, query_api, xml_text,
};

const FINANCE_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::zt-demo-documents/finance/*"},
{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::zt-demo-documents",
 "Condition":{"StringLike":{"s3:prefix":"finance/*"}}}]}"#;

#[tokio::test]
async fn ministack_enforces_the_session_policy_of_credentials_assumed_through_the_recorder() {
    let ms = MiniStack::start().await;
    let root = AwsCreds::root();
    for (id, key, first_line) in DOCUMENTS {
        assert_eq!(
            ms.get_object(&root, key).await,
            (200, document_body(id, first_line))
        );
    }
    let (status, body) = ms.get_object(&root, "finance/q4-report.md").await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().next(), Some("# Q4 Financial Report"));

    let sts = StsRecorder::start(&ms).await;
    let finance = ms.assume_role_at(&sts.endpoint(), Some(FINANCE_ONLY)).await;
    let calls = sts.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["Action"], "AssumeRole");
    assert_eq!(calls[0]["RoleArn"], ROLE_ARN);
    assert_eq!(calls[0]["Policy"], FINANCE_ONLY);

    let (status, body) = ms.get_object(&finance, "finance/q4-report.md").await;
    assert_eq!(
        (status, body.lines().next()),
        (200, Some("# Q4 Financial Report"))
    );
    let (status, body) = ms.get_object(&finance, "engineering/roadmap.md").await;
    assert_eq!(
        (status, xml_text(&body, "Code")),
        (403, Some("AccessDenied")),
        "{body}"
    );
    let (status, body) = ms.list_objects(&finance, "finance/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Key>finance/q4-report.md</Key>"), "{body}");
    let (status, body) = ms.list_objects(&finance, "engineering/").await;
    assert_eq!(
        (status, xml_text(&body, "Code")),
        (403, Some("AccessDenied")),
        "{body}"
    );

    // A wrong secret is refused: MiniStack verifies session signatures.
    let forged = AwsCreds {
        secret_access_key: "not-the-secret".into(),
        ..finance.clone()
    };
    let (status, body) = ms.get_object(&forged, "finance/q4-report.md").await;
    assert_eq!(
        (status, xml_text(&body, "Code")),
        (403, Some("SignatureDoesNotMatch"))
    );
}

#[tokio::test]
async fn ministack_the_recorder_keeps_the_signature_valid_forces_errors_and_stops() {
    let ms = MiniStack::start().await;
    let sts = StsRecorder::start(&ms).await;
    let finance = ms.assume_role(Some(FINANCE_ONLY)).await;
    let chained = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "chained"),
        ("SourceIdentity", "alice"),
        ("Tags.member.1.Key", "user"),
        ("Tags.member.1.Value", "alice"),
    ];
    // Session keys are signature-checked (root keys are not): signed for the recorder's
    // host, the request passes MiniStack's check and is refused on its merits only.
    let (status, body) = query_api(&sts.endpoint(), "sts", &finance, &chained).await;
    assert_eq!(
        (status, xml_text(&body, "Code")),
        (403, Some("AccessDenied")),
        "{body}"
    );
    let forged = AwsCreds {
        secret_access_key: "not-the-secret".into(),
        ..finance.clone()
    };
    let (status, body) = query_api(&sts.endpoint(), "sts", &forged, &chained).await;
    assert_eq!(
        (status, xml_text(&body, "Code")),
        (403, Some("SignatureDoesNotMatch"))
    );
    let calls = sts.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["SourceIdentity"], "alice");
    assert_eq!(calls[0]["Tags.member.1.Value"], "alice");

    sts.force_error(Some((400, "RegionDisabledException")));
    let (status, body) = query_api(&sts.endpoint(), "sts", &AwsCreds::root(), &chained).await;
    assert_eq!(
        (status, xml_text(&body, "Code"), xml_text(&body, "Type")),
        (400, Some("RegionDisabledException"), Some("Sender"))
    );
    sts.force_error(None);
    let again = ms.assume_role_at(&sts.endpoint(), None).await;
    assert_eq!(ms.get_object(&again, "hr/guidelines.md").await.0, 200);
    assert_eq!(sts.calls().len(), 4);

    sts.stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(sts.endpoint())
        .send()
        .await;
    assert!(refused.is_err_and(|e| e.is_connect()));
}
