import uuid


def test_redis_answers_and_keeps_a_value_with_its_expiry(redis_client):
    assert redis_client.ping() is True
    key = f"test:redis:{uuid.uuid4()}"
    redis_client.set(key, "value", ex=60)
    assert redis_client.get(key) == b"value"
    assert 0 < redis_client.ttl(key) <= 60
    redis_client.delete(key)
