"""Task 12 (9-stock.js): products and their stock, served on port 1245.

The stock of product N lives in Redis under `item.N` (a missing key: none reserved yet),
so it survives a restart of the app and is shared by every process that serves it.
A reservation takes one unit in a single atomic step: many clients at once get exactly
the stock there was, never more.

    python 9_stock.py       # Flask's own server, as npm run dev
    ./serve.sh 9_stock      # production: granian, 2 workers (README: The two apps)
"""

from pathlib import Path

import redis
from flask import Flask, Response
from redis.connection import Connection

from queuing.redis_connection import run
from queuing.redis_scripts import LuaScript
from queuing.web_app import (
    create_app_client,
    create_json_app,
    json_response,
    parse_id,
    redis_get,
    serve,
)

list_products = [
    {"itemId": 1, "itemName": "Suitcase 250", "price": 50, "initialAvailableQuantity": 4},
    {"itemId": 2, "itemName": "Suitcase 450", "price": 100, "initialAvailableQuantity": 10},
    {"itemId": 3, "itemName": "Suitcase 650", "price": 350, "initialAvailableQuantity": 2},
    {"itemId": 4, "itemName": "Suitcase 1050", "price": 550, "initialAvailableQuantity": 5},
]
PRODUCT_NOT_FOUND = {"status": "Product not found"}
LUA = Path(__file__).parent / "lua"  # the course scripts' Lua, one file a script

# Reading the stock and writing it back in two steps (as the course did) lets two
# requests both take the last unit; this script does both in one step.
TAKE_ONE = LuaScript.from_file(LUA / "take_one.lua")


def get_item_by_id(item_id: int | None) -> dict | None:
    return next((item for item in list_products if item["itemId"] == item_id), None)


class Stock:
    """The current stock of each product, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @staticmethod
    def key(item: dict) -> str:
        return f"item.{item['itemId']}"

    def get_current_reserved_stock_by_id(self, item: dict) -> int:
        stock = redis_get(self.client, self.key(item))
        return item["initialAvailableQuantity"] if stock is None else int(stock)

    def reserve_stock_by_id(self, item: dict) -> int | None:
        """Take one unit: the stock left, or None when there was none. Confirmed once a
        replica has it, where there are replicas; else the unit is given back and
        NotConfirmed raised (the app answers 503)."""
        keys, args = {"stock": self.key(item)}, {"initial": item["initialAvailableQuantity"]}

        def give_back(connection: Connection, left: int) -> None:
            if left >= 0:  # a unit was taken
                connection.send_command("INCR", self.key(item))
                connection.read_response()

        left = TAKE_ONE.run(self.client, keys, args, confirm=True, undo=give_back)
        return None if left < 0 else left


def create_app(client: redis.Redis | None = None) -> Flask:
    """The app, on the Redis of REDIS_URL unless given a client."""
    app = create_json_app(__name__)
    stock = Stock(client or create_app_client())

    @app.get("/list_products")
    def products() -> Response:
        return json_response(list_products)

    @app.get("/list_products/<item_id>")
    def product(item_id: str) -> Response:
        item = get_item_by_id(parse_id(item_id))
        if item is None:
            return json_response(PRODUCT_NOT_FOUND, 404)
        current = stock.get_current_reserved_stock_by_id(item)
        return json_response({**item, "currentQuantity": current})

    @app.get("/reserve_product/<item_id>")
    def reserve_product(item_id: str) -> Response:
        item = get_item_by_id(parse_id(item_id))
        if item is None:
            return json_response(PRODUCT_NOT_FOUND, 404)
        if stock.reserve_stock_by_id(item) is None:
            return json_response(
                {"status": "Not enough stock available", "itemId": item["itemId"]}, 409
            )
        return json_response({"status": "Reservation confirmed", "itemId": item["itemId"]})

    return app


if __name__ == "__main__":
    run(lambda: serve(create_app()))
