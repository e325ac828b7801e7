"""The plain model bundle a service worker caches: no MLflow class, the text scorer deferred."""

import pickle

import training.bundle
from training.bundle import Deferred, ModelBundle


class FakeScorer:
    def __init__(self, max_chars: int):
        self.max_chars = max_chars


def test_the_cached_bundle_defers_its_text_scorer_and_keeps_every_part():
    bundle = ModelBundle(
        "encoder", None, None, {"plan": 1}, {"info": 2}, FakeScorer(7), catalog={"c": 3}
    )
    cached = pickle.loads(bundle.cache_bytes())
    assert type(cached) is ModelBundle
    assert isinstance(cached.__dict__["text"], Deferred)  # not unpickled yet
    assert cached.text.max_chars == 7 and not isinstance(cached.__dict__["text"], Deferred)
    assert (cached.encoder, cached.plan, cached.info, cached.catalog_data) == (
        "encoder",
        {"plan": 1},
        {"info": 2},
        {"c": 3},
    )
    assert pickle.loads(cached.cache_bytes()).text.max_chars == 7  # re-cached as it was


def test_a_bundle_without_text_has_none_and_old_registered_versions_still_resolve():
    assert pickle.loads(ModelBundle("e", None, None, {}, {}).cache_bytes()).text is None
    from training.pyfunc import NpsRiskModel

    # Versions registered before the split pickled training.bundle.NpsRiskModel.
    assert training.bundle.NpsRiskModel is NpsRiskModel
    registered = NpsRiskModel("e", None, None, {}, {}, FakeScorer(3))
    plain = ModelBundle.of(registered)
    assert type(plain) is ModelBundle and plain.text.max_chars == 3
