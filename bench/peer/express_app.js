// The peer of the two Flask apps for bench/run.py: the routes that the benchmark loads,
// written as the course's Express solution writes them (node_redis with promisify).
//   node express_app.js <redis port> <http port>
'use strict';
const { promisify } = require('util');
const express = require('express');
const redis = require('redis');

const [redisPort, httpPort] = [Number(process.argv[2]), Number(process.argv[3])];
const client = redis.createClient({ host: '127.0.0.1', port: redisPort });
const getAsync = promisify(client.get).bind(client);

const listProducts = [
  { itemId: 1, itemName: 'Suitcase 250', price: 50, initialAvailableQuantity: 4 },
  { itemId: 2, itemName: 'Suitcase 450', price: 100, initialAvailableQuantity: 10 },
  { itemId: 3, itemName: 'Suitcase 650', price: 350, initialAvailableQuantity: 2 },
  { itemId: 4, itemName: 'Suitcase 1050', price: 550, initialAvailableQuantity: 5 },
];
const getItemById = (id) => listProducts.find((item) => item.itemId === id);

async function getCurrentReservedStockById(itemId) {
  const stock = await getAsync(`item.${itemId}`);
  return stock;
}

const app = express();

app.get('/list_products/:itemId', async (req, res) => {
  const item = getItemById(parseInt(req.params.itemId, 10));
  if (!item) {
    res.json({ status: 'Product not found' });
    return;
  }
  const stock = await getCurrentReservedStockById(item.itemId);
  const currentQuantity = stock === null ? item.initialAvailableQuantity : parseInt(stock, 10);
  res.json({ ...item, currentQuantity });
});

app.get('/available_seats', async (req, res) => {
  const seats = await getAsync('available_seats');
  res.json({ numberOfAvailableSeats: seats });
});

client.on('ready', () => {
  client.set('available_seats', 50);
  app.listen(httpPort, '127.0.0.1', () => console.log('ready'));
});
