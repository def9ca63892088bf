//! Instance lifecycle: up, invoke, exec, ps, logs, down
