import mvm

@mvm.app(
    name="strings",
    env={
        "ESCAPES": "tab\there\nnewline \u00e9 \x41 \N{BULLET}",
        "RAW": r"C:\no\escapes",
        "JOINED": "implicit " 'concatenation' " works",
        "FSTRING": f"no {{interpolation}} here",
        "SINGLE": 'it\'s',
    },
)
def f() -> None:
    pass
