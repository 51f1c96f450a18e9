import httpx
import pytest

from stack.webhooks import WebhookCapture, captured_webhooks


@pytest.fixture
def capture(tmp_path):
    with WebhookCapture(tmp_path) as server:
        yield server


def test_a_posted_webhook_is_captured_under_its_channel(capture, tmp_path):
    url = f"http://{capture.host}:{capture.port}"
    assert httpx.post(f"{url}/sms", json={"to": "+15550100", "text": "hi"}).status_code == 202
    assert httpx.post(f"{url}/push", json={"token": "t", "title": "x"}).status_code == 202
    assert captured_webhooks(tmp_path, "sms") == [{"to": "+15550100", "text": "hi"}]
    assert captured_webhooks(tmp_path, "push") == [{"token": "t", "title": "x"}]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [("/fax", b"{}", 404), ("/sms", b"not json", 400), ("/sms", b"x" * (65 * 1024), 413)],
)
def test_bad_webhooks_get_a_4xx_and_capture_nothing(capture, tmp_path, path, body, status):
    response = httpx.post(f"http://{capture.host}:{capture.port}{path}", content=body)
    assert response.status_code == status
    assert "error" in response.json()
    assert captured_webhooks(tmp_path, "sms") == []
