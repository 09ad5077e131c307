#!/bin/sh
# written on main
