# Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs; both
# runs must print the same lines, so it prints only facts that do not depend on scheduling.
# Ruby threads are OS threads (greenify makes them green threads) that take turns holding
# the VM lock; every section makes them wait on each other, then a threaded WEBrick server
# answers client threads of the same process over loopback.
require "net/http"
require "webrick"

THREADS = 4

# Thread-locals and fiber-locals stay per thread while others run.
locals = THREADS.times.map do |i|
  Thread.new do
    Thread.current[:mine] = i
    Thread.current.thread_variable_set(:var, i * 10)
    sleep 0.002
    [Thread.current[:mine], Thread.current.thread_variable_get(:var)]
  end
end.map(&:value)
puts "thread locals: #{locals.inspect}"

# A contended Mutex: the holder sleeps, the others wait for it.
mutex = Mutex.new
total = 0
THREADS.times.map do
  Thread.new do
    20.times do |round|
      mutex.synchronize do
        total += 1
        sleep 0.001 if round % 5 == 0
      end
    end
  end
end.each(&:join)
puts "mutex total: #{total}"

# A Queue with consumers waiting before anything arrives.
queue = Queue.new
consumers = 2.times.map do
  Thread.new do
    sum = 0
    while (v = queue.pop) != :stop
      sum += v
    end
    sum
  end
end
sleep 0.005
(1..100).each { |v| queue << v }
2.times { queue << :stop }
puts "queue sum: #{consumers.sum(&:value)}"

# A ConditionVariable hand-off.
lock = Mutex.new
cv = ConditionVariable.new
ready = false
waiter = Thread.new do
  lock.synchronize do
    cv.wait(lock) until ready
    :woken
  end
end
sleep 0.005
lock.synchronize do
  ready = true
  cv.signal
end
puts "condition variable: #{waiter.value}"

# A SizedQueue makes its producer wait for the consumer.
sized = SizedQueue.new(2)
producer = Thread.new { 10.times { |i| sized.push(i) }; sized.push(nil) }
received = []
while (v = sized.pop)
  received << v
end
producer.join
puts "sized queue: #{received.inspect}"

# A threaded WEBrick server and client threads, each on its own keep-alive connection.
server = WEBrick::HTTPServer.new(
  BindAddress: "127.0.0.1", Port: 0,
  Logger: WEBrick::Log.new(File::NULL), AccessLog: []
)
server.mount_proc("/square") do |req, res|
  n = Integer(req.query["n"])
  sleep 0.001 if n % 10 == 0
  res.content_type = "text/plain"
  res.body = (n * n).to_s
end
port = server.config[:Port]
server_thread = Thread.new { server.start }
CLIENTS = 8
REQUESTS = 25
answers = CLIENTS.times.map do |c|
  Thread.new do
    Net::HTTP.start("127.0.0.1", port) do |http|
      REQUESTS.times.map do |r|
        n = c * REQUESTS + r
        res = http.get("/square?n=#{n}")
        res.code == "200" && Integer(res.body) == n * n
      end
    end
  end
end.flat_map(&:value)
server.shutdown
server_thread.join
puts "webrick: #{answers.count(true)} of #{CLIENTS * REQUESTS} requests answered right"
puts "done"
