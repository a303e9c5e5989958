"""What tests (and benchmarks) share: fakes and sample data that production code never imports."""
