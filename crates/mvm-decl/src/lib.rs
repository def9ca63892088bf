//! Static declaration front ends (Python, TypeScript) lowering to Workload IR without running user code
