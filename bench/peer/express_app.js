// The peer of the two Flask apps for bench/run.py: the course's two Express apps, with
// the routes that the benchmark loads, written as the course's JS solution writes them
// (node_redis with promisify; Kue for the seats), read-then-write and all.
//   node express_app.js <redis port> <http port> 9-stock    the stock (task 12)
//   node express_app.js <redis port> <http port> 100-seat   the seats (task 13)
// It prints "ready" once it listens.
'use strict';
const { promisify } = require('util');
const express = require('express');
const redis = require('redis');

const [redisPort, httpPort, appName] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const client = redis.createClient({ host: '127.0.0.1', port: redisPort });
const getAsync = promisify(client.get).bind(client);
const setAsync = promisify(client.set).bind(client);
const app = express();

// ------------------------------------------------------------------ 9-stock.js

const listProducts = [
  { itemId: 1, itemName: 'Suitcase 250', price: 50, initialAvailableQuantity: 4 },
  { itemId: 2, itemName: 'Suitcase 450', price: 100, initialAvailableQuantity: 10 },
  { itemId: 3, itemName: 'Suitcase 650', price: 350, initialAvailableQuantity: 2 },
  { itemId: 4, itemName: 'Suitcase 1050', price: 550, initialAvailableQuantity: 5 },
];
const getItemById = (id) => listProducts.find((item) => item.itemId === id);

function reserveStockById(itemId, stock) {
  return setAsync(`item.${itemId}`, stock);
}

async function getCurrentReservedStockById(itemId) {
  const stock = await getAsync(`item.${itemId}`);
  return stock;
}

function stockApp() {
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

  // Read the stock, then write it back less one: two requests that read the same
  // stock both confirm, and one unit is taken for the two of them.
  app.get('/reserve_product/:itemId', async (req, res) => {
    const item = getItemById(parseInt(req.params.itemId, 10));
    if (!item) {
      res.json({ status: 'Product not found' });
      return;
    }
    const stock = await getCurrentReservedStockById(item.itemId);
    const currentQuantity = stock === null ? item.initialAvailableQuantity : parseInt(stock, 10);
    if (currentQuantity < 1) {
      res.json({ status: 'Not enough stock available', itemId: item.itemId });
      return;
    }
    await reserveStockById(item.itemId, currentQuantity - 1);
    res.json({ status: 'Reservation confirmed', itemId: item.itemId });
  });
}

// ------------------------------------------------------------------ 100-seat.js

let reservationEnabled;

function reserveSeat(number) {
  return setAsync('available_seats', number);
}

async function getCurrentAvailableSeats() {
  const seats = await getAsync('available_seats');
  return seats;
}

function seatApp() {
  const kue = require('kue'); // eslint-disable-line global-require
  const queue = kue.createQueue({ redis: { host: '127.0.0.1', port: redisPort } });

  app.get('/available_seats', async (req, res) => {
    const numberOfAvailableSeats = await getCurrentAvailableSeats();
    res.json({ numberOfAvailableSeats });
  });

  app.get('/reserve_seat', (req, res) => {
    if (!reservationEnabled) {
      res.json({ status: 'Reservation are blocked' });
      return;
    }
    const job = queue.create('reserve_seat', {}).save((error) => {
      if (error) {
        res.json({ status: 'Reservation failed' });
        return;
      }
      res.json({ status: 'Reservation in process' });
    });
    job.on('complete', () => console.log(`Seat reservation job ${job.id} completed`));
    job.on('failed', (message) => console.log(`Seat reservation job ${job.id} failed: ${message}`));
  });

  // Each job reads the seats, then writes them back less one.
  app.get('/process', (req, res) => {
    res.json({ status: 'Queue processing' });
    queue.process('reserve_seat', async (job, done) => {
      const availableSeats = Number(await getCurrentAvailableSeats()) - 1;
      await reserveSeat(availableSeats);
      if (availableSeats === 0) reservationEnabled = false;
      if (availableSeats >= 0) done();
      else done(new Error('Not enough seats available'));
    });
  });
}

// ------------------------------------------------------------------ launch

const apps = { '9-stock': stockApp, '100-seat': seatApp };
apps[appName]();

client.on('ready', async () => {
  if (appName === '100-seat') {
    await reserveSeat(50);
    reservationEnabled = true;
  }
  app.listen(httpPort, '127.0.0.1', () => console.log('ready'));
});
