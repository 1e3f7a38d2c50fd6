"""The FastAPI + uvicorn peer of `npm run bench` (issue 20): the stack the Python serving guides
recommend, serving the bench's models on Ferry's routes and bodies, with numpy computing the same
networks from the weights the bench writes (ONNX Runtime for Python is not packaged in Debian).

Run by bench/dist/scaling.js; needs Debian's python3-fastapi, python3-uvicorn and python3-numpy.
  python3 bench/python/fastapi_server.py --port 8000 --model mlp-bench=/tmp/weights/mlp-bench ...
A model folder holds meta.json and raw little-endian float32 files:
  {"version": "1.0.0", "input": "x", "width": 256, "labels": [...], "final": "softmax" | "sigmoid",
   "layers": [{"weight": "w0.f32", "bias": "b0.f32", "fanIn": 256, "fanOut": 1024}, ...]}
Hidden layers use ReLU. A sigmoid model has one output: P(labels[1]).
"""

import argparse
import json
import os
from typing import Dict, List

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Instance(BaseModel):
    x: List[float]


class PredictRequest(BaseModel):
    instances: List[Instance]


class Model:
    def __init__(self, folder: str):
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        self.version = meta["version"]
        self.width = meta["width"]
        self.labels = meta["labels"]
        self.final = meta["final"]
        self.layers = []
        for layer in meta["layers"]:
            w = np.fromfile(os.path.join(folder, layer["weight"]), dtype="<f4").reshape(layer["fanIn"], layer["fanOut"])
            b = np.fromfile(os.path.join(folder, layer["bias"]), dtype="<f4")
            self.layers.append((w, b))

    def predict(self, x: np.ndarray) -> List[Dict[str, object]]:
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
        out = []
        if self.final == "sigmoid":
            p = 1 / (1 + np.exp(-h[:, 0]))
            for v in p.tolist():
                out.append({"label": self.labels[1 if v > 1 - v else 0], "scores": {self.labels[0]: 1 - v, self.labels[1]: v}})
            return out
        e = np.exp(h - h.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append({"label": self.labels[best], "scores": dict(zip(self.labels, row))})
        return out


def build_app(models: Dict[str, Model]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/models/{name}/predict")
    def predict(name: str, body: PredictRequest):
        model = models.get(name)
        if model is None:
            raise HTTPException(status_code=404, detail=f"no model {name}")
        if not body.instances or any(len(i.x) != model.width for i in body.instances):
            raise HTTPException(status_code=400, detail=f"expected instances with x of {model.width} numbers")
        x = np.array([i.x for i in body.instances], dtype=np.float32)
        return {"model": name, "version": model.version, "predictions": model.predict(x)}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        return {"ready": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], help="name=folder")
    args = parser.parse_args()
    models = {}
    for spec in args.model:
        name, folder = spec.split("=", 1)
        models[name] = Model(folder)
    uvicorn.run(build_app(models), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
