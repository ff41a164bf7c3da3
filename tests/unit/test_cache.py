from worker.cache import connect
from worker.settings import Settings


def test_the_redis_socket_timeouts_come_from_the_settings() -> None:
    client = connect(Settings(redis_socket_timeout_s=0.25))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.25, 0.25)
