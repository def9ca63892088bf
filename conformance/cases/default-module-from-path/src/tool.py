import mvm

@mvm.app(name="tool", image=mvm.python_image(python="3.13"))
def run(prompt: str) -> str:
    return prompt
