# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""DIS metrics (S-measure, weighted/max/mean/adaptive F-measure, max/mean/adaptive E-measure, MAE, relaxed HCE) as
an ``evaluate`` module.

Load it offline from this file (``evaluate.load("/path/to/birefnet_hf/metrics/dis_metrics.py")``) or with
:func:`birefnet_hf.metrics.load_dis_metrics`. The scores are identical to PySODMetrics; see
:mod:`birefnet_hf.metrics.evaluator` for their definitions and :mod:`birefnet_hf.metrics.inputs` for accepted inputs.

Maps of any size are stored in the module's Arrow cache as ``{"shape": [H, W], "data": <uint8 bytes>}`` records
(``datasets`` has no 2-D feature with two variable dimensions); predictions are converted to ``uint8`` and resized
to their reference when added, so the cache holds exactly what is scored.
"""

import datasets
import evaluate
import numpy as np

from birefnet_hf.metrics.evaluator import DISMetrics
from birefnet_hf.metrics.inputs import prepare_pair

_DESCRIPTION = """\
Metrics of dichotomous image segmentation (DIS5K) and salient/camouflaged object detection, computed exactly like
PySODMetrics: S-measure (sm), weighted F-measure (wfm), mean absolute error (mae), max/mean/adaptive F-measure
(max_fm, mean_fm, adp_fm; beta^2 = 0.3), max/mean/adaptive E-measure (max_em, mean_em, adp_em) and the relaxed human
correction effort HCE_5 (hce). Curve-based scores use the dataset-mean curve over 256 thresholds.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of 2-D maps (numpy arrays, torch tensors or PIL images, any size), uint8 in 0..255, float in
        [0, 1] (quantised as uint8(p * 255), like a saved PNG) or bool. A map whose size differs from its reference
        is resized to it with cv2.resize (bilinear), as in the authors' evaluation.
    references: list of 2-D ground-truth masks, bool or 0/255 integers (foreground is > 128).
Returns:
    dict with the float scores sm, wfm, mae, max_fm, mean_fm, adp_fm, max_em, mean_em, adp_em, hce.
Configurations (``config_name``):
    "default": HCE binarises predictions like PySODMetrics (min-max normalised map > 0.5);
    "raw_hce": like BiRefNet's and the DIS authors' evaluation code (uint8 map > 128).
Examples:
    >>> import numpy as np
    >>> from birefnet_hf.metrics import load_dis_metrics
    >>> metric = load_dis_metrics()
    >>> gt = np.zeros((64, 64), dtype=np.uint8); gt[16:48, 16:48] = 255
    >>> round(metric.compute(predictions=[gt], references=[gt])["sm"], 3)
    1.0
"""

_CITATION = """\
@inproceedings{qin2022highly,
  title={Highly Accurate Dichotomous Image Segmentation},
  author={Qin, Xuebin and Dai, Hang and Hu, Xiaobin and Fan, Deng-Ping and Shao, Ling and Van Gool, Luc},
  booktitle={ECCV},
  year={2022}
}
@article{zheng2024birefnet,
  title={Bilateral Reference for High-Resolution Dichotomous Image Segmentation},
  author={Zheng, Peng and Gao, Dehong and Fan, Deng-Ping and Liu, Li and Laaksonen, Jorma and Ouyang, Wanli and Sebe, Nicu},
  journal={CAAI Artificial Intelligence Research},
  year={2024}
}
"""

# Configurations: "default" binarises predictions for HCE like PySODMetrics, "raw_hce" like BiRefNet's code.
_HCE_BINARIZATION = {"default": "normalized", "raw_hce": "raw"}

_MAP_FEATURE = {
    "shape": datasets.Sequence(datasets.Value("int32"), length=2),
    "data": datasets.Value("binary"),
}


def _encode(array: np.ndarray) -> dict:
    return {"shape": list(array.shape), "data": array.tobytes()}


def _decode(record: dict, dtype) -> np.ndarray:
    return np.frombuffer(record["data"], dtype=dtype).reshape(record["shape"])


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DISMetric(evaluate.Metric):
    """``evaluate`` wrapper of :class:`birefnet_hf.metrics.DISMetrics`."""

    def _info(self):
        if self.config_name not in _HCE_BINARIZATION:
            raise ValueError(
                f"config_name must be one of {sorted(_HCE_BINARIZATION)}, got {self.config_name!r}"
            )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _MAP_FEATURE, "references": _MAP_FEATURE}),
            reference_urls=[
                "https://github.com/lartpang/PySODMetrics",
                "https://github.com/ZhengPeng7/BiRefNet",
            ],
        )

    def _encode_batch(
        self, predictions, references, names=("predictions", "references")
    ) -> tuple[list, list]:
        for name, values in (("predictions", predictions), ("references", references)):
            if values is None:
                raise ValueError(f"{name} is missing; pass both predictions=... and references=...")
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise TypeError(f"{name} must be a list of 2-D maps, got {type(values).__name__}")
        if len(predictions) != len(references):
            raise ValueError(
                f"predictions and references must have the same length, got {len(predictions)} and {len(references)}"
            )
        if len(predictions) == 0:
            raise ValueError("predictions and references are empty")
        if getattr(predictions, "ndim", 3) != 3 or getattr(references, "ndim", 3) != 3:
            raise ValueError(
                "predictions and references must be lists of 2-D maps or (N, H, W) arrays, got shapes "
                f"{tuple(getattr(predictions, 'shape', ()))} and {tuple(getattr(references, 'shape', ()))}"
            )
        encoded_predictions, encoded_references = [], []
        for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            if names == ("predictions", "references"):
                pred_name, ref_name = f"predictions[{index}]", f"references[{index}]"
            else:
                pred_name, ref_name = names
            pred, mask = prepare_pair(prediction, reference, pred_name, ref_name)
            encoded_predictions.append(_encode(pred))
            encoded_references.append(_encode(mask.view(np.uint8)))
        return encoded_predictions, encoded_references

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of maps (see the module's inputs description)."""
        predictions, references = self._encode_batch(predictions, references)
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one map."""
        if prediction is None or reference is None:
            raise ValueError("add() needs both prediction=... and reference=...")
        (prediction,), (reference,) = self._encode_batch(
            [prediction], [reference], ("prediction", "reference")
        )
        super().add(prediction=prediction, reference=reference, **kwargs)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the scores of everything added (plus ``predictions`` / ``references`` if given)."""
        if predictions is None and references is None and self.writer is None:
            raise ValueError(
                "No maps were added: call add_batch(predictions=..., references=...) or pass them here"
            )
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        metrics = DISMetrics(hce_binarization=_HCE_BINARIZATION[self.config_name])
        for prediction, reference in zip(predictions, references, strict=True):
            metrics.update_prepared(_decode(prediction, np.uint8), _decode(reference, np.bool_))
        return metrics.compute()
