"""A finished run's result as typed data, from this version's results and the previous one's."""

from engine.run_result import RunResult

SIDE = {"macs": 10, "params": 2, "metrics": {"psnr": 20.0}, "latency_ms": {"pytorch": 1.0}}
RESULT = {"run_id": 3, "teacher": SIDE, "macs_ratio": 5.0, "metric": "psnr", "image_size": 64, "onnx_path": "o",
          "onnx_max_abs_diff": 0.0, "model_card_path": "c", "grid_path": "g"}


def test_the_students_weights_are_words_even_where_an_earlier_version_made_them_a_path():
    now = RunResult.from_dict({**RESULT, "student": {**SIDE, "weights_used": "final student (fine-tuned)"}})
    assert now.student.weights == "final student (fine-tuned)"
    before = RunResult.from_dict({**RESULT, "student": {**SIDE, "weights": "/home/u/final student (fine-tuned)"}})
    assert before.student.weights == "final student (fine-tuned)"
    assert RunResult.from_dict({**RESULT, "student": SIDE}).student.weights is None
    assert RunResult.from_dict({**RESULT, "student": SIDE}).onnx_variants_skipped == {}
