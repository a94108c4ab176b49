"""Anti-spoofing metrics for `evaluate`: EER, ASVspoof 5 minDCF / actDCF and CLLR of bona fide scores.

Load it from this file: `evaluate.load("<path>/antispoofing_metrics.py")` or `training.metrics.load_metric()`.
`evaluate` copies this file into its module cache before importing it, so the math is imported from the installed
`training` package by absolute import (a relative import would look for a file next to the cached copy).
"""

import datasets
import evaluate

from training.metrics import compute_metrics

_DESCRIPTION = """\
Equal error rate (EER, with its threshold) and the ASVspoof 5 metrics minDCF, actDCF (P_spoof 0.05, C_miss 1,
C_fa 10, threshold -ln 1.9) and CLLR (bits) of a spoofing countermeasure. A trial is accepted as bona fide when its
score is >= the threshold; the EER is the DET point where |P_miss - P_fa| is smallest, reported as the mean of the
two rates, as in the official ASVspoof evaluation packages.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): bona fide scores, higher = more bona fide (log-likelihood ratios for actDCF
        and CLLR to be meaningful).
    references (`list` of `int`): 1 for bona fide, 0 for spoof.
Returns:
    eer (`float`): equal error rate as a fraction; eer_threshold (`float`); min_dcf, act_dcf (`float`, normalised);
    cllr (`float`, bits).
Examples:
    >>> metric = evaluate.load("training/metrics_module/antispoofing_metrics.py")
    >>> metric.compute(predictions=[2.0, 1.0, -1.0, 0.5], references=[1, 1, 0, 0])["eer"]
    0.0
"""

_CITATION = """\
@article{liu2025nes2net,
  title={Nes2Net: A Lightweight Nested Architecture for Foundation Model Driven Speech Anti-spoofing},
  author={Liu, Tianchi and Truong, Duc-Tuan and Das, Rohan Kumar and Lee, Kong Aik and Li, Haizhou},
  journal={IEEE Transactions on Information Forensics and Security},
  volume={20},
  year={2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AntispoofingMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://www.asvspoof.org/", "https://arxiv.org/abs/2504.05657"],
        )

    def _compute(self, predictions: list[float], references: list[int]) -> dict[str, float]:
        return dict(compute_metrics(predictions, references))
