"""A BERT model written straight to an ONNX graph of ONNX Runtime's fused transformer operators.

``torch.onnx.export`` gives a graph of primitive operators: ONNX Runtime's optimizer fuses its layer norms and
GELU but not its attention, so every layer still runs about twenty small operators for attention alone, and
dynamic int8 quantization can only reach the projections. This module builds the graph from the weights
instead, with ONNX Runtime's contrib operators (domain ``com.microsoft``), one per block:

* ``EmbedLayerNormalization``: word + position + token-type lookups and their layer norm;
* ``Attention``: the packed Q/K/V projection, scaled dot-product attention under the padding mask, and the
  heads merged back (one ``[hidden, 3 * hidden]`` weight); quantized to ``QAttention``;
* ``MatMul``, then bias, residual and ``LayerNormalization`` after attention and after the feed-forward block
  (not ONNX Runtime's ``SkipLayerNormalization``, slower on CPU: see :func:`_residual_norm`); ``MatMul`` +
  ``BiasGelu`` (or ``FastGelu``, ``Relu``) inside it;
* the task head: the pooler and classifier (``[batch, labels]``) or the token classifier
  (``[batch, sequence, labels]``), or none for an encoder (``last_hidden_state``).

It covers ``model_type == "bert"`` with absolute positions (every model the toolkit trains, and BERT-layout
checkpoints such as MiniLM); :func:`fused_bert_unsupported` says why another model is not, and the export then
uses ``torch.onnx`` instead. The graph takes the same inputs and gives the same output as the exported one; the
export checks it against PyTorch before using it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MS = "com.microsoft"
# The task head's MatMuls (int8 quantization leaves them fp32: see toolkit._onnx_export._kept_fp32).
HEAD_MATMULS = ("pooler.matmul", "classifier.matmul")
_ACTIVATIONS = {"gelu": "BiasGelu", "gelu_new": "FastGelu", "gelu_pytorch_tanh": "FastGelu", "relu": "Relu"}


def fused_bert_unsupported(model, kind: str) -> str | None:
    """Why ``model`` cannot be written as a fused graph (``None`` when it can)."""
    config = model.config
    if config.model_type != "bert":
        return f"model_type {config.model_type!r} (the fused graph covers BERT)"
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"position_embedding_type {config.position_embedding_type!r}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "a decoder"
    if _activation(config) not in _ACTIVATIONS:
        return f"hidden_act {_activation(config)!r}"
    if config.hidden_size % config.num_attention_heads:
        return "hidden_size not a multiple of num_attention_heads"
    if kind == "classifier":
        if getattr(model, "bert", None) is None or getattr(model.bert, "pooler", None) is None:
            return "a sequence classifier without BERT's pooler"
        if not isinstance(getattr(model, "classifier", None), _linear_type()):
            return "a classifier head that is not one linear layer"
    if kind == "token_classifier" and not isinstance(getattr(model, "classifier", None), _linear_type()):
        return "a token-classifier head that is not one linear layer"
    return None


def _linear_type():
    import torch

    return torch.nn.Linear


def _activation(config) -> str:
    act = config.hidden_act
    return act if isinstance(act, str) else getattr(act, "__name__", repr(act))


class _Graph:
    """Nodes and initializers as they are added; names are unique by construction."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []

    def weight(self, name: str, value) -> str:
        from onnx import numpy_helper

        array = value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        # np.array, not np.ascontiguousarray: that makes a scalar (a Gather's index) an array of one
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def linear_weight(self, name: str, linear) -> str:
        """A ``torch.nn.Linear``'s weight as a MatMul's right-hand side, ``[in, out]``."""
        return self.weight(name, linear.weight.detach().float().t())

    def matmul(self, name: str, x: str, linear) -> str:
        """``x @ linear.weight.T`` (the bias is added by the caller), as ``{name}.matmul``."""
        weight = self.linear_weight(f"{name}.weight", linear)
        return self.node("MatMul", [x, weight], [f"{name}.matmul"], f"{name}.matmul")

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, *, domain: str = "", **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))
        return outputs[0]


def _residual_norm(g: _Graph, name: str, projected: str, residual: str, bias, norm) -> str:
    """``LayerNorm(projected + bias + residual)`` as Add, Add, LayerNormalization. Not ONNX Runtime's fused
    ``SkipLayerNormalization``: its CPU kernel ran 6x slower than these three (570 against 94 us on a
    [32, 18, 384] tensor, ONNX Runtime 1.32, 2 threads), so loaders turn off the session's fusion into it
    (:data:`toolkit._onnx.DISABLED_FUSIONS`)."""
    biased = g.node(
        "Add", [projected, g.weight(f"{name}.bias", bias)], [f"{name}.biased"], f"{name}.bias_add"
    )
    summed = g.node("Add", [biased, residual], [f"{name}.residual"], f"{name}.residual_add")
    return g.node(
        "LayerNormalization",
        [summed, g.weight(f"{name}.ln.gamma", norm.weight), g.weight(f"{name}.ln.beta", norm.bias)],
        [name],
        f"{name}.ln",
        axis=-1,
        epsilon=float(norm.eps),
    )


def build_fused_bert(
    model, kind: str, input_names: list[str], output_name: str, path: Path, opset: int
) -> dict:
    """Write ``model`` (a ``BertModel``, ``BertForMaskedLM``'s encoder, ``BertForSequenceClassification`` or
    ``BertForTokenClassification``) to ``path`` as a graph of fused operators; returns the operators used.

    Args:
        kind: ``"encoder"`` (output ``last_hidden_state``), ``"classifier"`` or ``"token_classifier"``
            (output ``logits``).
        input_names: the graph's inputs, ``input_ids`` and ``attention_mask`` first, then ``token_type_ids``
            when the model takes them (int64, ``[batch, sequence]``).
    """
    import onnx
    from onnx import TensorProto, helper

    config = model.config
    bert = getattr(model, "bert", model)  # a task model holds the encoder as .bert; BertModel is one
    hidden, heads = config.hidden_size, config.num_attention_heads
    g = _Graph()

    # ---- embeddings: ids to int32, then lookups + layer norm in one operator
    ids32 = g.node("Cast", ["input_ids"], ["input_ids_int32"], "cast_ids", to=TensorProto.INT32)
    mask32 = g.node("Cast", ["attention_mask"], ["mask_int32"], "cast_mask", to=TensorProto.INT32)
    emb = bert.embeddings
    if "token_type_ids" in input_names:
        segments = g.node(
            "Cast", ["token_type_ids"], ["token_type_int32"], "cast_types", to=TensorProto.INT32
        )
    else:  # a model without token types in its inputs still adds type 0's row
        segments = g.node(
            "Mul", [ids32, g.weight("zero_int32", np.zeros((), np.int32))], ["token_type_int32"], "zero_types"
        )
    x = g.node(
        "EmbedLayerNormalization",
        [
            ids32,
            segments,
            g.weight("embeddings.word", emb.word_embeddings.weight),
            g.weight("embeddings.position", emb.position_embeddings.weight),
            g.weight("embeddings.token_type", emb.token_type_embeddings.weight),
            g.weight("embeddings.ln.gamma", emb.LayerNorm.weight),
            g.weight("embeddings.ln.beta", emb.LayerNorm.bias),
        ],
        ["embeddings_out", "embeddings_mask_index"],
        "embeddings",
        domain=MS,
        epsilon=float(emb.LayerNorm.eps),
    )

    # ---- layers
    act_op = _ACTIVATIONS[_activation(config)]
    for i, layer in enumerate(bert.encoder.layer):
        p = f"layer{i}"
        att = layer.attention.self
        qkv_w = np.concatenate(
            [m.weight.detach().float().t().numpy() for m in (att.query, att.key, att.value)], axis=1
        )
        qkv_b = np.concatenate([m.bias.detach().float().numpy() for m in (att.query, att.key, att.value)])
        context = g.node(
            "Attention",
            [
                x,
                g.weight(f"{p}.attention.qkv.weight", qkv_w),
                g.weight(f"{p}.attention.qkv.bias", qkv_b),
                mask32,
            ],
            [f"{p}.attention.context"],
            f"{p}.attention",
            domain=MS,
            num_heads=heads,
        )
        out = layer.attention.output
        projected = g.matmul(f"{p}.attention.output", context, out.dense)
        x = _residual_norm(g, f"{p}.attention.out", projected, x, out.dense.bias, out.LayerNorm)
        inter = layer.intermediate.dense
        up = g.matmul(f"{p}.ffn.up", x, inter)
        up_bias = g.weight(f"{p}.ffn.up.bias", inter.bias)
        if act_op == "Relu":
            biased = g.node("Add", [up, up_bias], [f"{p}.ffn.up.add"], f"{p}.ffn.up.add")
            activated = g.node("Relu", [biased], [f"{p}.ffn.act"], f"{p}.ffn.act")
        else:
            activated = g.node(act_op, [up, up_bias], [f"{p}.ffn.act"], f"{p}.ffn.act", domain=MS)
        down = layer.output
        down_out = g.matmul(f"{p}.ffn.down", activated, down.dense)
        x = _residual_norm(g, f"{p}.ffn.out", down_out, x, down.dense.bias, down.LayerNorm)

    # ---- head
    if kind == "encoder":
        g.node("Identity", [x], [output_name], "output")
        out_shape = ["batch", "sequence", hidden]
    elif kind == "token_classifier":
        out_shape = ["batch", "sequence", model.classifier.out_features]
    else:
        first = g.node(
            "Gather",
            [x, g.weight("first_token.index", np.zeros((), np.int64))],
            ["first_token"],
            "first_token",
            axis=1,
        )
        pooler = bert.pooler.dense
        pooled = g.matmul("pooler", first, pooler)
        pooled = g.node("Add", [pooled, g.weight("pooler.bias", pooler.bias)], ["pooler.add"], "pooler.add")
        pooled = g.node("Tanh", [pooled], ["pooler.out"], "pooler.tanh")
        out_shape = ["batch", model.classifier.out_features]
    if kind != "encoder":
        logits = g.matmul("classifier", pooled if kind == "classifier" else x, model.classifier)
        g.node(
            "Add", [logits, g.weight("classifier.bias", model.classifier.bias)], [output_name], "classifier"
        )

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in input_names]
    outputs = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, out_shape)]
    # Element types of the intermediate tensors: ONNX's shape inference does not know the contrib operators,
    # and the int8 quantizer needs the types of the tensors it quantizes.
    ints = {ids32, mask32, segments, "embeddings_mask_index"}
    typed = [
        helper.make_tensor_value_info(name, TensorProto.INT32 if name in ints else TensorProto.FLOAT, None)
        for node in g.nodes
        for name in node.output
        if name != output_name
    ]
    graph = helper.make_graph(
        g.nodes, "toolkit_fused_bert", inputs, outputs, g.initializers, value_info=typed
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)],
        producer_name="toolkit",
    )
    onnx.checker.check_model(onnx_model, full_check=False)
    onnx.save(onnx_model, str(path))
    ops: dict[str, int] = {}
    for node in g.nodes:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops
