# A threaded WEBrick server for cdylib-tests/tests/languages.rs: `ruby webrick_server.rb PORT`
# (0: any) prints `listening on PORT`, then answers GET /square?n=N with N*N, one Ruby thread
# per connection, until it is killed. The test loads it from client threads of its own.
require "webrick"

server = WEBrick::HTTPServer.new(
  BindAddress: "127.0.0.1", Port: Integer(ARGV.fetch(0, "0")),
  Logger: WEBrick::Log.new(File::NULL), AccessLog: []
)
server.mount_proc("/square") do |req, res|
  n = Integer(req.query["n"])
  # Some answers wait, so that connections overlap while others are served.
  sleep 0.001 if n % 10 == 0
  res.content_type = "text/plain"
  res.body = (n * n).to_s
end
$stdout.puts "listening on #{server.config[:Port]}"
$stdout.flush
server.start
