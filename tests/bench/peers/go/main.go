// Benchmark peer: the WebSocket + Redis pub/sub fan-out server as the Go tutorials write it, on
// gorilla/websocket and redigo: a hub goroutine owns the channel → clients map, each connection
// has a read pump and a write pump with a buffered send channel, and one PubSubConn subscribes a
// channel when its first local client arrives and unsubscribes it when the last one leaves.
//
//	go build -o wsrelay_bench_go main.go   (GOPATH mode on Debian's packages: see ../setup.sh)
//	wsrelay_bench_go -addr 127.0.0.1:8080 -redis 127.0.0.1:6379
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/websocket"
)

const (
	writeWait  = 10 * time.Second
	sendBuffer = 256
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

type Client struct {
	hub     *Hub
	conn    *websocket.Conn
	channel string
	send    chan []byte
}

type Message struct {
	channel string
	data    []byte
}

type Hub struct {
	channels   map[string]map[*Client]bool
	register   chan *Client
	unregister chan *Client
	broadcast  chan Message
	pubsub     redis.PubSubConn
	publisher  *redis.Pool
}

func newHub(pubsub redis.PubSubConn, publisher *redis.Pool) *Hub {
	return &Hub{
		channels:   make(map[string]map[*Client]bool),
		register:   make(chan *Client),
		unregister: make(chan *Client),
		broadcast:  make(chan Message),
		pubsub:     pubsub,
		publisher:  publisher,
	}
}

func (h *Hub) run() {
	for {
		select {
		case c := <-h.register:
			clients := h.channels[c.channel]
			if clients == nil {
				clients = make(map[*Client]bool)
				h.channels[c.channel] = clients
				if err := h.pubsub.Subscribe(c.channel); err != nil {
					log.Fatalf("redis subscribe: %v", err)
				}
			}
			clients[c] = true
		case c := <-h.unregister:
			h.remove(c)
		case m := <-h.broadcast:
			for c := range h.channels[m.channel] {
				select {
				case c.send <- m.data:
				default:
					// A client whose buffer is full is dropped rather than stalling the others.
					h.remove(c)
				}
			}
		}
	}
}

func (h *Hub) remove(c *Client) {
	clients := h.channels[c.channel]
	if !clients[c] {
		return
	}
	delete(clients, c)
	close(c.send)
	if len(clients) == 0 {
		delete(h.channels, c.channel)
		if err := h.pubsub.Unsubscribe(c.channel); err != nil {
			log.Fatalf("redis unsubscribe: %v", err)
		}
	}
}

// receive runs in its own goroutine: redigo allows one reader next to one writer (the hub).
func (h *Hub) receive() {
	for {
		switch v := h.pubsub.Receive().(type) {
		case redis.Message:
			h.broadcast <- Message{channel: v.Channel, data: v.Data}
		case error:
			log.Fatalf("redis receive: %v", v)
		}
	}
}

func (c *Client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		conn := c.hub.publisher.Get()
		_, err = conn.Do("PUBLISH", c.channel, data)
		conn.Close()
		if err != nil {
			log.Printf("redis publish: %v", err)
		}
	}
}

func (c *Client) writePump() {
	defer c.conn.Close()
	for data := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
			return
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

func serveWs(hub *Hub, w http.ResponseWriter, r *http.Request) {
	channel := r.URL.Query().Get("channel")
	if channel == "" {
		http.Error(w, "channel required", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	client := &Client{hub: hub, conn: conn, channel: channel, send: make(chan []byte, sendBuffer)}
	hub.register <- client
	go client.writePump()
	go client.readPump()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "WebSocket listen address")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	flag.Parse()

	subConn, err := redis.Dial("tcp", *redisAddr)
	if err != nil {
		log.Fatalf("redis: %v", err)
	}
	publisher := &redis.Pool{
		MaxIdle:     16,
		IdleTimeout: 240 * time.Second,
		Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", *redisAddr) },
	}
	hub := newHub(redis.PubSubConn{Conn: subConn}, publisher)
	go hub.run()
	go hub.receive()

	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWs(hub, w, r) })
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
