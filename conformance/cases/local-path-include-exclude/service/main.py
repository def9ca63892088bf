def handle(x):
    return x
