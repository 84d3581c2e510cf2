"""RingRift's AI-service HTTP contract: `ringloop serve` plays the loop's models on it, and a tournament seat can be any service speaking it."""
