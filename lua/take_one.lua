-- KEYS: stock
-- ARGV: initial
-- 9_stock.py: take one unit of a product's stock, in one step (reading the stock and
-- writing it back in two steps, as the course did, lets two requests both take the last
-- unit). stock: the product's stock left; initial: its initial stock, while nothing is
-- reserved yet. Returns the stock left, or -1 when there was none.

local left = tonumber(redis.call('GET', stock) or initial)
if left < 1 then return -1 end
redis.call('SET', stock, left - 1)
return left - 1
