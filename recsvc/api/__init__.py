"""HTTP resources, one flask-smorest blueprint each: views parse, call, and serialise."""
