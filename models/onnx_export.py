"""ONNX export of our models, and the parity check between ONNX Runtime and the native model.

Each LightGBM booster converts (onnxmltools) to its own graph; we merge them into one graph that
shares the input, so the gateway makes one batched call per forecast. The ordering rule
(non-negative, P90 >= P50) is part of the graph so native and ONNX outputs mean the same.

>>> import numpy as np
>>> max_abs_diff({"a": np.array([1.0, 2.0])}, {"a": np.array([1.0, 2.5])})
0.5
"""

from __future__ import annotations

import numpy as np

OPSET = 15
ML_OPSET = 3


def _convert_one(model, n_features: int, input_name: str):
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    return convert_lightgbm(
        model, initial_types=[(input_name, FloatTensorType([None, n_features]))], target_opset=OPSET
    )


def _normalize_nodes(input_name, n_features, scale_col, scale_offset, unit_cols):
    """Nodes computing ``scaled = features / denom`` (denom = scale on unit columns, 1 elsewhere)
    and ``scale`` [N, 1]; the same float32 operations as ``DemandModel.normalize``."""
    from onnx import TensorProto, helper

    mask = np.zeros(n_features, dtype=np.float32)
    mask[unit_cols] = 1.0
    inits = [
        helper.make_tensor("scale_col", TensorProto.INT64, [1], [scale_col]),
        helper.make_tensor("scale_offset", TensorProto.FLOAT, [], [scale_offset]),
        helper.make_tensor("unit_mask", TensorProto.FLOAT, [n_features], mask.tolist()),
        helper.make_tensor("other_mask", TensorProto.FLOAT, [n_features], (1.0 - mask).tolist()),
    ]
    nodes = [
        helper.make_node("Gather", [input_name, "scale_col"], ["scale_raw"], axis=1),
        helper.make_node("Add", ["scale_raw", "scale_offset"], ["scale"]),
        helper.make_node("Mul", ["scale", "unit_mask"], ["scale_masked"]),
        helper.make_node("Add", ["scale_masked", "other_mask"], ["denom"]),
        helper.make_node("Div", [input_name, "denom"], ["scaled"]),
    ]
    return nodes, inits


def lightgbm_graph(
    boosters: dict,
    n_features: int,
    input_name: str,
    scale_col: int,
    scale_offset: float,
    unit_cols: list[int],
) -> bytes:
    """Merge the boosters ``mean``, ``p50``, ``p90`` into one ONNX model (serialized bytes):
    normalise the input by the series' scale, run the trees, scale the outputs back."""
    import onnx
    from onnx import TensorProto, helper

    nodes, inits = _normalize_nodes(input_name, n_features, scale_col, scale_offset, unit_cols)
    raw_out: dict[str, str] = {}
    for name, model in boosters.items():
        part = onnx.compose.add_prefix(_convert_one(model, n_features, input_name), f"{name}_")
        g = part.graph
        for node in g.node:
            node.input[:] = ["scaled" if i == f"{name}_{input_name}" else i for i in node.input]
            nodes.append(node)
        inits.extend(g.initializer)
        nodes.append(helper.make_node("Mul", [g.output[0].name, "scale"], [f"{name}_units"]))
        raw_out[name] = f"{name}_units"
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes += [
        helper.make_node("Max", [raw_out["mean"], "zero"], ["mean"]),
        helper.make_node("Max", [raw_out["p50"], "zero"], ["p50"]),
        helper.make_node("Max", [raw_out["p90"], "p50"], ["p90"]),
    ]
    graph = helper.make_graph(
        nodes,
        "shelfcast_demand",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_features])],
        [
            helper.make_tensor_value_info(o, TensorProto.FLOAT, [None, 1])
            for o in ("mean", "p50", "p90")
        ],
        initializer=[*inits, zero],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="shelfcast",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_onnx(model_bytes: bytes, X: np.ndarray) -> dict[str, np.ndarray]:
    """Run an ONNX model on a float32 matrix with ONNX Runtime; outputs flattened, by name."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: np.ascontiguousarray(X, dtype=np.float32)})
    return {
        o.name: np.asarray(v).reshape(len(X), -1)[:, 0]
        for o, v in zip(sess.get_outputs(), outs, strict=True)
    }


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest absolute difference over the outputs both dicts have."""
    return max(
        float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float))))
        for k in a
        if k in b
    )
