//! Host-guest protocol: versioned hello, length-delimited frames, request and response messages
