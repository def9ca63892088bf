// A function of the file's own called `app` is not the SDK's.
function app(options: { name: string }) {
  return <F>(fn: F): F => fn;
}

export const greet = app({ name: "mine" })((name: string) => `hello ${name}`);
