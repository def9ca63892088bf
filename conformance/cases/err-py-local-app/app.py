# A function of the file's own called `app` is not the SDK's.
def app(**options):
    return lambda fn: fn


@app(name="mine")
def greet(name: str) -> str:
    return "hello " + name
