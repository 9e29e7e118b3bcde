"""The worker's cache of cart add-ons: copies handed out, the oldest let go, everything
forgotten with the model it was computed for."""

from recsvc.serving.addon_cache import AddonCache


class Model:
    """Any object stands for a model: the cache tells them apart by identity."""

    def __init__(self, version: str = "t1") -> None:
        self.version = version


make_model = Model


def test_the_cache_hands_out_copies_and_forgets_with_the_model():
    cache, calls = AddonCache(size=2), []

    def compute(name):
        def answer():
            calls.append(name)
            return "cart", [{"item_id": name, "score": 1.0}]

        return answer

    model = make_model()
    key = cache.key(["i1"], ["i1"], 3)
    first = cache.get(model, key, compute("a"))
    first[1][0]["title"] = "a tile added by the caller"
    again = cache.get(model, key, compute("b"))
    assert calls == ["a"] and again == ("cart", [{"item_id": "a", "score": 1.0}])
    cache.get(model, cache.key(["i2"], [], 3), compute("c"))
    cache.get(model, cache.key(["i3"], [], 3), compute("d"))
    cache.get(model, key, compute("e"))  # the oldest was let go
    assert calls == ["a", "c", "d", "e"]
    cache.get(make_model(version="t2"), key, compute("f"))  # another model: nothing held
    assert calls[-1] == "f"
