def run(prompt: str) -> str:
    return prompt.upper()


def health() -> dict:
    return {"ok": True}
