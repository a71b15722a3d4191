"""Loads a `simclr export --format safetensors-torchvision` file into torchvision the way its
metadata says (the `python` entry), strictly, and writes the logits for the given input.
Usage: python3 torchvision_load.py MODEL.safetensors IN.safetensors OUT.safetensors"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

torch.set_num_threads(1)

model_file, in_file, out_file = sys.argv[1:4]
state, meta = st.load(model_file)
scope = {}
exec(meta["python"], scope)
model = scope["model"]
model.load_state_dict(state, strict=True)
model.eval()
x = st.load(in_file)[0]["x"]
with torch.no_grad():
    logits = model(x)
st.save(out_file, {"logits": logits}, {"type": type(model).__name__})
