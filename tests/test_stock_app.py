"""Course task 12: 9_stock.py. Routes and bad input through Flask's test client; the
course's curl session, concurrency, two processes and a Redis outage over HTTP against
the app started as a user starts it."""

import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.flask_client import assert_json
from tests.served_apps import get, request, start_app, start_with_server

stock_app = importlib.import_module("9_stock")

PRODUCTS = (
    b'[{"itemId":1,"itemName":"Suitcase 250","price":50,"initialAvailableQuantity":4},'
    b'{"itemId":2,"itemName":"Suitcase 450","price":100,"initialAvailableQuantity":10},'
    b'{"itemId":3,"itemName":"Suitcase 650","price":350,"initialAvailableQuantity":2},'
    b'{"itemId":4,"itemName":"Suitcase 1050","price":550,"initialAvailableQuantity":5}]'
)
NOT_FOUND = b'{"status":"Product not found"}'
CONFIRMED_1 = b'{"status":"Reservation confirmed","itemId":1}'
NO_STOCK_1 = b'{"status":"Not enough stock available","itemId":1}'


def detail(item_id: int, current: int) -> bytes:
    item = stock_app.get_item_by_id(item_id)
    return (
        f'{{"itemId":{item_id},"itemName":"{item["itemName"]}","price":{item["price"]},'
        f'"initialAvailableQuantity":{item["initialAvailableQuantity"]},'
        f'"currentQuantity":{current}}}'
    ).encode()


@pytest.fixture
def client(redis_url):
    with redis.Redis.from_url(redis_url, decode_responses=True) as connection:
        yield stock_app.create_app(connection).test_client()


# ------------------------------------------------------------------ routes


def test_list_products(client):
    assert_json(client.get("/list_products"), 200, PRODUCTS)


def test_product_detail_starts_at_the_initial_quantity(client):
    assert_json(client.get("/list_products/1"), 200, detail(1, 4))
    assert_json(client.get("/list_products/4"), 200, detail(4, 5))


def test_reservations_take_the_stock_down_to_zero_then_conflict(client, redis_client):
    for left in (3, 2, 1, 0):
        assert_json(client.get("/reserve_product/1"), 200, CONFIRMED_1)
        assert redis_client.get("item.1") == str(left)
    assert_json(client.get("/reserve_product/1"), 409, NO_STOCK_1)
    assert_json(client.get("/list_products/1"), 200, detail(1, 0))
    assert redis_client.get("item.1") == "0"


def test_stock_lives_in_redis_and_outlives_the_app(redis_url, client, redis_client):
    client.get("/reserve_product/2")
    with redis.Redis.from_url(redis_url, decode_responses=True) as connection:
        restarted = stock_app.create_app(connection).test_client()
        assert_json(restarted.get("/list_products/2"), 200, detail(2, 9))
    redis_client.set("item.3", 1)  # as another process would leave it
    assert_json(client.get("/list_products/3"), 200, detail(3, 1))


@pytest.mark.parametrize("item_id", ["12", "0", "abc", "-1", "1.5", "2abc", "1e3", " 1", "9" * 40])
def test_anything_but_a_product_id_is_not_found_and_reserves_nothing(client, redis_client, item_id):
    assert_json(client.get(f"/list_products/{item_id}"), 404, NOT_FOUND)
    assert_json(client.get(f"/reserve_product/{item_id}"), 404, NOT_FOUND)
    assert redis_client.keys("*") == []


def test_unknown_routes_and_wrong_methods_answer_json(client):
    assert_json(client.get("/nothing/here"), 404, b'{"status":"Not Found"}')
    assert_json(client.get("/list_products/"), 404, b'{"status":"Not Found"}')
    for method in ("post", "put", "delete", "options"):
        response = getattr(client, method)("/reserve_product/1")
        assert_json(response, 405, b'{"status":"Method Not Allowed"}')
        assert response.headers["Allow"] == "GET, HEAD"


def test_a_server_error_answers_json(client, redis_client):
    redis_client.set("item.1", "not a number")
    assert_json(client.get("/list_products/1"), 500, b'{"status":"Internal Server Error"}')
    assert_json(client.get("/reserve_product/1"), 500, b'{"status":"Internal Server Error"}')
    assert redis_client.get("item.1") == "not a number"


def test_without_redis_it_answers_503_json(make_redis_server):
    server = make_redis_server()  # never started
    with redis.Redis.from_url(server.url) as connection:
        client = stock_app.create_app(connection).test_client()
        assert_json(client.get("/list_products/1"), 503, b'{"status":"Redis unavailable"}')
        assert_json(client.get("/reserve_product/1"), 503, b'{"status":"Redis unavailable"}')
        assert_json(client.get("/list_products"), 200, PRODUCTS)  # needs no Redis


# ------------------------------------------------------------------ over HTTP


def test_the_course_curl_session(redis_url, start_script):
    app, port = start_app(start_script, "9_stock.py", redis_url)
    assert get(port, "/list_products") == PRODUCTS
    assert get(port, "/list_products/1") == detail(1, 4)
    assert get(port, "/list_products/12") == NOT_FOUND
    assert get(port, "/reserve_product/12") == NOT_FOUND
    assert [get(port, "/reserve_product/1") for _ in range(5)] == [CONFIRMED_1] * 4 + [NO_STOCK_1]
    reply = request(port, "/reserve_product/1")
    assert (reply.status, reply.content_type) == (409, "application/json")
    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()


def reserve_concurrently(ports: list[int], path: str, count: int) -> list[tuple[int, bytes]]:
    def reserve(n: int) -> tuple[int, bytes]:
        reply = request(ports[n % len(ports)], path)
        return reply.status, reply.body

    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(reserve, range(count)))


def test_100_clients_at_once_get_exactly_the_stock_of_10(redis_url, start_script):
    _, port = start_app(start_script, "9_stock.py", redis_url)
    replies = reserve_concurrently([port], "/reserve_product/2", 100)
    confirmed = b'{"status":"Reservation confirmed","itemId":2}'
    refused = b'{"status":"Not enough stock available","itemId":2}'
    assert replies.count((200, confirmed)) == 10
    assert replies.count((409, refused)) == 90
    assert get(port, "/list_products/2") == detail(2, 0)


def test_two_app_processes_share_the_stock(redis_url, start_script):
    (_, port_a), (_, port_b) = (start_app(start_script, "9_stock.py", redis_url) for _ in "ab")
    replies = reserve_concurrently([port_a, port_b], "/reserve_product/2", 60)
    assert sum(status == 200 for status, _ in replies) == 10
    assert get(port_a, "/list_products/2") == get(port_b, "/list_products/2") == detail(2, 0)


def test_a_redis_outage_gives_503_and_takes_nothing(make_redis_server, start_script):
    server = make_redis_server(persist=True).start()
    app, port = start_app(start_script, "9_stock.py", server.url)
    assert get(port, "/reserve_product/1") == CONFIRMED_1

    server.stop()
    for path in ("/list_products/1", "/reserve_product/1"):
        reply = request(port, path)
        assert (reply.status, reply.content_type) == (503, "application/json")
        assert reply.body == b'{"status":"Redis unavailable"}'
    assert app.process.poll() is None  # alive

    server.start()
    assert get(port, "/list_products/1") == detail(1, 3)  # the failed reservation took none
    assert get(port, "/reserve_product/1") == CONFIRMED_1
    assert get(port, "/list_products/1") == detail(1, 2)
    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()


def test_a_bad_port_gets_one_line(redis_url, start_script):
    app = start_script("9_stock.py", redis_url, PORT="http")
    assert app.wait() == 1
    assert app.stderr() == "Invalid PORT 'http': a port number is 1 to 65535\n"


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_served_by_a_production_server_as_readme_says(redis_url, start_script, server):
    app, port = start_with_server(start_script, server, "9_stock", redis_url)
    assert get(port, "/list_products") == PRODUCTS
    replies = reserve_concurrently([port], "/reserve_product/3", 20)
    assert sorted(status for status, _ in replies) == [200] * 2 + [409] * 18
    app.terminate()
    assert app.wait() == 0
