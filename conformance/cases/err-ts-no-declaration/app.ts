// No declaration and no Sandbox: nothing to compile, and nothing is run.
console.log("hello");
