"""``activation``: the paper's evidence, the detectors' fused Grad-CAM A.

The three WCBnet variants were trained with image-level labels only; where their decision
looked is A (``shared/design/method.md`` steps 2-3). It is the only evidence learned from
data, and the only one that reads every kind of forgery the training set held.
"""

from __future__ import annotations

from .base import Evidence, EvidenceInputs, EvidenceMap, register_evidence


@register_evidence("activation", "the detectors' fused Grad-CAM (the paper's map; needs the WCBnet models)")
class ActivationEvidence(Evidence):
    name = "activation"
    title = "Detectors' attention"
    needs_models = True

    def compute(self, inputs: EvidenceInputs) -> EvidenceMap:
        if inputs.activation is None or inputs.probability is None:
            raise ValueError("the activation evidence needs the models' activation and probability")
        probability = float(inputs.probability)
        return EvidenceMap(
            "activation", inputs.activation, 1.0,
            f"where the three trained detectors looked when they scored the photo "
            f"(their score: {probability:.2f} on a scale from 0 to 1)",
            strength=probability,
        )
