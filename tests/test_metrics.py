from appliance.metrics import Metrics


def test_counts_and_histogram_render():
    metrics = Metrics()
    metrics.observe("m", 200, 0.003)
    metrics.observe("m", 200, 0.2)
    metrics.observe("m", 415, 0.001)
    metrics.add_gauges(lambda: ["appliance_ready 1"])
    text = metrics.render()
    assert 'appliance_requests_total{model="m",status="200"} 2' in text
    assert 'appliance_requests_total{model="m",status="415"} 1' in text
    assert 'appliance_request_duration_seconds_bucket{model="m",le="0.005"} 1' in text
    assert 'appliance_request_duration_seconds_bucket{model="m",le="0.25"} 2' in text
    assert 'appliance_request_duration_seconds_bucket{model="m",le="+Inf"} 2' in text
    assert 'appliance_request_duration_seconds_count{model="m"} 2' in text
    assert "appliance_ready 1" in text
    assert metrics.requests("m", 200) == 2 and metrics.total_requests() == 3


def test_label_values_are_escaped():
    metrics = Metrics()
    metrics.observe('a"b', 404, 0.1)
    assert 'model="a\\"b"' in metrics.render()
