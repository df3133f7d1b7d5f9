def test_the_programs_page_bench_prints_times_and_constant_queries(run_bench):
    _, figures = run_bench("program_list", BENCH_PROGRAMS="120")
    assert figures["programs"] == 120
    assert figures["events"] == 1200
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert len(figures["queries_per_page"]) == 1
