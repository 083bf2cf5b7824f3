"""A test-only op that sleeps: it stretches materialize so a test can SIGKILL it mid-shard."""

import time

from augflow import Op, Schema, register


@register("test_sleep", family="test")
class Sleep(Op):
    """Sleep, then return the sample unchanged."""

    class Params(Schema):
        seconds: float = 0.05

    def apply(self, sample):
        time.sleep(self.params.seconds)
        return sample.copy()
