def test_the_pages_bench_prints_times_and_the_queries_at_two_sizes(run_bench):
    output, figures = run_bench("pages", BENCH_PROGRAMS="60", BENCH_REQUESTS="5")
    assert figures["programs"] == 60
    assert figures["events"] > 600  # ten per OP, and the work of some
    assert {"board", "programs by score", "proposal", "charts", "program"} <= set(figures["pages"])
    for page in figures["pages"].values():
        assert 0 < page["p50_ms"] <= page["p95_ms"]
    assert figures["queries_constant"], output
