"""A Python client of Ferry's gRPC Open Inference Protocol service, written the way a KServe or
Triton user would: compile the .proto with grpcio-tools, call the generated stub with grpcio.

Usage: python3 python-client.py PATH/TO/grpc_predict_v2.proto HOST:PORT
Prints one JSON object with what it saw; open-inference-grpc.test.ts checks it against REST.
"""
import json
import os
import struct
import sys
import tempfile

import grpc
from grpc_tools import protoc


def compile_proto(proto: str, out: str) -> None:
    include = os.path.dirname(proto)
    # grpc_tools ships the well-known types; the Open Inference Protocol proto needs none, but -I it anyway.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(
        ["protoc", f"-I{include}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", proto]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")


def main() -> None:
    proto, target = sys.argv[1], sys.argv[2]
    out = tempfile.mkdtemp(prefix="ferry-grpc-py-")
    compile_proto(proto, out)
    sys.path.insert(0, out)
    import grpc_predict_v2_pb2 as pb  # noqa: E402  (generated above)
    import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

    rows = [[1, 2, 3, 4, 5, 6, 7, 8], [-1, 0.5, 0, 2, -3, 4, 1, 0]]
    flat = [v for r in rows for v in r]
    seen = {}
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        seen["live"] = stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
        seen["ready"] = stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
        md = stub.ModelMetadata(pb.ModelMetadataRequest(name="lin"), timeout=30)
        seen["metadata"] = {
            "name": md.name,
            "versions": list(md.versions),
            "platform": md.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in md.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in md.outputs],
        }

        req = pb.ModelInferRequest(model_name="lin")
        x = req.inputs.add(name="x", datatype="FP32", shape=[2, 8])
        x.contents.fp32_contents.extend(flat)
        res = stub.ModelInfer(req, timeout=30)
        seen["typed"] = list(res.outputs[0].contents.fp32_contents)

        raw = pb.ModelInferRequest(model_name="lin", model_version="1.0.0")
        raw.inputs.add(name="x", datatype="FP32", shape=[2, 8])
        raw.raw_input_contents.append(struct.pack("<16f", *flat))
        res = stub.ModelInfer(raw, timeout=30)
        seen["raw"] = list(struct.unpack("<2f", res.raw_output_contents[0]))

        def code_of(request) -> str:
            try:
                stub.ModelInfer(request, timeout=30)
            except grpc.RpcError as e:  # the status a Python user would branch on
                return e.code().name
            return "OK"

        bad = pb.ModelInferRequest(model_name="lin")
        b = bad.inputs.add(name="x", datatype="INT32", shape=[1, 8])
        b.contents.int_contents.extend(range(8))
        seen["invalid_code"] = code_of(bad)
        ghost = pb.ModelInferRequest(model_name="ghost")
        g = ghost.inputs.add(name="x", datatype="FP32", shape=[1, 8])
        g.contents.fp32_contents.extend(rows[0])
        seen["not_found_code"] = code_of(ghost)
        big = pb.ModelInferRequest(model_name="lin")
        big.inputs.add(name="x", datatype="FP32", shape=[4096, 8])
        big.raw_input_contents.append(bytes(4096 * 8 * 4))
        seen["too_big_code"] = code_of(big)

        # grpc.health.v1 without generated code: the Check request is one string field (1: service),
        # the response one enum field (1: status; 1 = SERVING), encoded by hand.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda s: b"" if not s else b"\x0a" + bytes([len(s)]) + s.encode(),
            response_deserializer=lambda b: b,
        )
        body = check("", timeout=30)
        seen["health"] = {b"\x08\x01": "SERVING", b"\x08\x02": "NOT_SERVING"}.get(body, repr(body))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
