"""Small CANDLE-style benchmarks used by the demo, the tests and new users as a template."""
