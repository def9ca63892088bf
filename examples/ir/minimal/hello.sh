#!/bin/sh
echo "hello from $(uname -n)"
