"""Serving recommendations in a worker: the model it holds, the breaker in front of Redis,
and the strategies (known visitor, session fold-in, popular)."""
