"""Text TTA: the classifier's predictions on the input and its rewrites are merged; selective
rewriting only rewrites uncertain inputs; failed or filtered rewrites do not vote."""

import torch

from augflow.text import Rewriter
from augflow.text.backends import Generation
from augflow.tta import TextTTA

WORDS = {"great": 0, "good": 0, "bad": 1, "awful": 1}


def keyword_classifier(texts):
    """Logits from keyword counts: class 0 positive, 1 negative (inputs without keywords: uncertain)."""
    out = torch.zeros(len(texts), 2)
    for i, t in enumerate(texts):
        for w in t.lower().replace(".", " ").split():
            if w in WORDS:
                out[i, WORDS[w]] += 2.0
    return out


class _Scripted:
    kind, model_id = "scripted", "scripted"

    def __init__(self, answers):
        self.answers = answers        # input text -> list of rewrites (None = failure)
        self.requests = 0

    def generate(self, requests):
        out = []
        for r in requests:
            self.requests += 1
            text = r.messages[-1]["content"].split("Text: ", 1)[1]
            answer = self.answers[text].pop(0)
            out.append(Generation(answer, None if answer else "HTTP 500"))
        return out


def test_merged_prediction_is_the_mean_over_original_and_rewrites():
    backend = _Scripted({"the film was gr8": ["The film was great.", "The film was good."]})
    tta = TextTTA(keyword_classifier, Rewriter(backend, k=2))
    got = tta(["the film was gr8"])
    texts = ["the film was gr8", "The film was great.", "The film was good."]
    manual = keyword_classifier(texts).softmax(1).mean(0, keepdim=True)
    assert torch.allclose(got, manual)


def test_failed_rewrites_do_not_vote():
    backend = _Scripted({"meh, gr8 acting": ["Great acting.", None]})
    result = TextTTA(keyword_classifier, Rewriter(backend, k=2))(["meh, gr8 acting"], return_all=True)
    assert result.rewrites == [["Great acting."]]
    assert result.predictions[0].shape == (2, 2) and result.report.fallbacks == 1


def test_selective_rewriting_only_rewrites_uncertain_inputs():
    backend = _Scripted({"it was gr8": ["It was great."], "it was okay-ish": ["It was good."]})
    tta = TextTTA(keyword_classifier, Rewriter(backend, k=1), threshold=0.5)
    texts = ["a great and good film", "it was gr8", "an awful, bad plot", "it was okay-ish"]
    result = tta(texts, return_all=True)
    assert result.augmented.tolist() == [False, True, False, True]   # no keyword -> entropy ln 2 > 0.5
    assert backend.requests == 2 and "rewrote 2 of 4 inputs" in str(tta.last_report)
    assert torch.allclose(result.merged[0], keyword_classifier(texts[:1]).softmax(1)[0])


def test_calibrate_sets_the_rate_of_rewritten_inputs():
    held_out = ["great", "good good", "awful", "no idea", "maybe", "bad bad bad", "hmm", "great bad"]
    tta = TextTTA(keyword_classifier, Rewriter(_Scripted({}), k=1))
    tta.calibrate(held_out, target_rate=0.5)
    scores = tta.uncertainty(keyword_classifier(held_out))
    assert int((scores > tta.threshold).sum()) == 4
