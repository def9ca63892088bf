#!/bin/sh
mkdir -p /tmp/metrics
