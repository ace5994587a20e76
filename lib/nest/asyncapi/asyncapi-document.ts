/**
 * The part of AsyncAPI 3.0 (https://www.asyncapi.com/docs/reference/specification/v3.0.0) that Warren writes, with
 * the AMQP 0.3.0 bindings. Every object is plain JSON.
 */

/** The Info Object: the application's title, the version of its API, and a description. */
export interface AsyncApiInfo {
  /** The application's title. Default: the connection's `connectionName`, or its name. */
  title: string;
  /** The version of the application's API (not of AsyncAPI). Default '0.0.0'. */
  version: string;
  /** A description of the application (CommonMark); absent unless given. */
  description?: string;
}

/** A Reference Object: points at an object elsewhere in the document instead of repeating it. */
export interface AsyncApiReference {
  /**
   * A JSON Pointer into this document: `#/channels/<id>`, `#/channels/<id>/messages/<id>` or
   * `#/components/messages/<id>`.
   */
  $ref: string;
}

/** A Server Object: one broker node the connection points to (never with its credentials). */
export interface AsyncApiServer {
  /** `host:port`. */
  host: string;
  /** The server's protocol: `amqps` when the connection uses TLS, `amqp` otherwise. */
  protocol: 'amqp' | 'amqps';
  /** The version of the protocol: AMQP 0-9-1. */
  protocolVersion: '0.9.1';
  /** The virtual host, as the path of an AMQP URL (`/%2F` for `/`). */
  pathname: string;
  /** `connection '<name>'`, and the node's number when the connection lists several. */
  title?: string;
}

/** AMQP exchange or queue, as the AMQP channel binding 0.3.0 describes it; arguments in `x-arguments`. */
export interface AmqpChannelBinding {
  /** What the channel is: an exchange (`routingKey`: messages are published to it with a routing key) or a queue. */
  is: 'routingKey' | 'queue';
  /** The exchange, when `is` is `routingKey`. */
  exchange?: {
    /** The exchange's name (`''` for the default exchange). */
    name: string;
    /** Absent for a plugin's type (`x-delayed-message`...), which is in `x-exchange-type`. */
    type?: 'topic' | 'direct' | 'fanout' | 'default' | 'headers';
    /** Whether the exchange survives a broker restart; absent for an exchange this application does not declare. */
    durable?: boolean;
    /** Whether the broker deletes the exchange once its last binding is removed; absent like `durable`. */
    autoDelete?: boolean;
    /** The virtual host the exchange is in: the connection's. */
    vhost: string;
  };
  /** The queue, when `is` is `queue`. */
  queue?: {
    /** Absent for a server-named queue. */
    name?: string;
    /** Whether the queue survives a broker restart. */
    durable: boolean;
    /** Whether only the declaring connection may use the queue (the broker deletes it when that connection closes). */
    exclusive: boolean;
    /** Whether the broker deletes the queue once its last consumer is gone. */
    autoDelete: boolean;
    /** The virtual host the queue is in: the connection's. */
    vhost: string;
  };
  /** Warren's extension: an exchange type the binding cannot name (a plugin's, such as `x-delayed-message`). */
  'x-exchange-type'?: string;
  /** Warren's extension: true for an internal exchange (reached only through exchange-to-exchange bindings). */
  'x-internal'?: boolean;
  /** The declare arguments (`x-message-ttl`, `x-dead-letter-exchange`, `x-queue-type`...). */
  'x-arguments'?: Record<string, JsonValue>;
  /** The version of the AMQP channel binding. */
  bindingVersion: '0.3.0';
}

/** Where messages reach a queue (or an exchange) from: a binding of the broker's topology. */
export interface WarrenBinding {
  /** The source exchange, whose messages the binding routes. */
  exchange: string;
  /** The binding key the routing key is matched against (a pattern with `*` and `#` on a topic exchange). */
  routingKey: string;
  /** The binding's arguments (`x-match` and the headers to match, on a headers exchange), as JSON. */
  arguments?: Record<string, JsonValue>;
}

/**
 * A Channel Object: an exchange or a queue of the connection's topology, or where replies go. Its id in the
 * document's `channels` is `exchange.<name>`, `queue.<name>`, `default-exchange`, `reply-to` or `client.reply-to`.
 */
export interface AsyncApiChannel {
  /** The exchange or queue name; null when only known at run time (server-named queue, a request's reply_to). */
  address: string | null;
  /** `exchange '<name>'`, `queue '<name>'`, or what the channel is. */
  title?: string;
  /**
   * What the title does not say: how a queue or exchange this application does not declare comes to exist, what a
   * server-named queue is, or how replies reach the channel.
   */
  description?: string;
  /**
   * The messages that may travel on the channel, by message id, each a reference to `components.messages`: what its
   * queue's handlers receive, what its bindings route to them, what the server sends to a retry queue or parking lot,
   * or the replies.
   */
  messages: Record<string, AsyncApiReference>;
  /** The channel's protocol bindings: absent for the reply channels, whose queue is the requester's. */
  bindings?: {
    /** The exchange or queue, as the AMQP binding describes it. */
    amqp: AmqpChannelBinding;
  };
  /** The bindings that route messages into this queue or exchange. */
  'x-warren-bindings'?: WarrenBinding[];
}

/** How an operation's messages are published or consumed, as the AMQP operation binding 0.3.0 describes it. */
export interface AmqpOperationBinding {
  /** 2: persistent, 1: transient. */
  deliveryMode?: 1 | 2;
  /** Whether messages are published `mandatory`: one that no queue takes is returned to the publisher, not dropped. */
  mandatory?: boolean;
  /** The fixed routing key, when there is one. */
  cc?: string[];
  /**
   * The messages' time to live (their `expiration` property), in ms: the client's requests expire after its timeout
   * unless `expireRequests: false`.
   */
  expiration?: number;
  /** Whether messages carry a `timestamp` property (a publisher stamps each). */
  timestamp?: boolean;
  /** Whether the consumer acknowledges (ack mode `auto` or `manual`), or not (`none`). */
  ack?: boolean;
  /** The version of the AMQP operation binding. */
  bindingVersion: '0.3.0';
}

/** An Operation Reply Object: where the reply to a request goes, and what it may be. */
export interface AsyncApiOperationReply {
  /** Where the reply goes, found in the request at run time: its `reply_to` property. */
  address: {
    /** A runtime expression: `$message.header#/replyTo`. */
    location: string;
    /** What the expression points at. */
    description?: string;
  };
  /** The channel replies travel on: `reply-to` for a handler's, `client.reply-to` for the module client's. */
  channel: AsyncApiReference;
  /** The reply and the error reply, for a handler; absent for the client (whatever the handler replies). */
  messages?: AsyncApiReference[];
}

/**
 * An Operation Object: something this application does on a channel. `receive.<queue>.<pattern>` for each handler,
 * `publish.<name>` for each publisher, `client.send` and `client.emit` for the module's client,
 * `retry.<queue>.<delay>` and `park.<queue>` for what the server sends to retry queues and parking lots.
 */
export interface AsyncApiOperation {
  /** `receive` for a handler; `send` for a publisher, the client, and the server's retries and parking. */
  action: 'send' | 'receive';
  /** The channel the operation is on. */
  channel: AsyncApiReference;
  /** A short title; Warren writes a summary instead. */
  title?: string;
  /** What the operation is: which handler, publisher or client method, on which queue or exchange. */
  summary?: string;
  /** For a handler with a payload schema, what happens to a payload that does not match it. */
  description?: string;
  /**
   * The messages the operation sends or receives, as references to its channel's messages; absent for a publisher and
   * the client, which may send any.
   */
  messages?: AsyncApiReference[];
  /** Where the reply goes: for a request handler and for `AmqpClient.send()`. */
  reply?: AsyncApiOperationReply;
  /** The operation's protocol bindings. */
  bindings?: {
    /** How messages are published or consumed. */
    amqp: AmqpOperationBinding;
  };
  /** A handler's retry policy: attempts in all, the delay before each retry (ms), and where it parks. */
  'x-warren-retry'?: {
    /** Deliveries in all, the first one included. */
    attempts: number;
    /** The delay before each retry, in ms. */
    delays: number[];
    /** The queue a message parks in after its last attempt fails. */
    parkingLot: string;
  };
}

/**
 * A Message Object, in `components.messages`: what a handler receives (one per pattern, kind and payload schema),
 * its reply, or the error reply (`rpc.error`).
 */
export interface AsyncApiMessage {
  /** A machine-friendly name: the handler's pattern (`<pattern> (reply)` for its reply). */
  name: string;
  /** A human-friendly title: the same as `name`. */
  title?: string;
  /** What the message is: an event, a request (and where its reply goes), a reply or an error reply. */
  summary?: string;
  /** A longer description of the message. */
  description?: string;
  /** The content type of the payload; when absent, the document's `defaultContentType`. */
  contentType?: string;
  /** A JSON Schema of the message's headers: for the error reply, its `x-warren-error` header. */
  headers?: Record<string, unknown>;
  /** The payload's JSON Schema, when its handler declares one. */
  payload?: Record<string, unknown>;
  /** Where the correlation id is, for a request and its replies: the `correlation_id` property. */
  correlationId?: {
    /** A runtime expression: `$message.header#/correlationId`. */
    location: string;
    /** What the correlation id ties together. */
    description?: string;
  };
}

/** An AsyncAPI 3.0 document: what `AmqpAsyncApi.document()` and `generateAsyncApi` return. */
export interface AsyncApiDocument {
  /** The version of the AsyncAPI specification the document follows. */
  asyncapi: '3.0.0';
  /** The application's title, API version and description. */
  info: AsyncApiInfo;
  /** The content type of a message that names none: `application/json`, what Warren's default serializer writes. */
  defaultContentType: string;
  /** The broker nodes of the connection, by id: the connection's name (`<name>-1`, `<name>-2`... for several nodes). */
  servers: Record<string, AsyncApiServer>;
  /** The exchanges, queues and reply channels, by channel id. */
  channels: Record<string, AsyncApiChannel>;
  /** What the application receives and sends, by operation id. */
  operations: Record<string, AsyncApiOperation>;
  /** Objects the rest of the document refers to. */
  components: {
    /** Every message, by message id; channels and operations refer to them. */
    messages: Record<string, AsyncApiMessage>;
  };
}

/** A JSON value: what an AMQP field-table value (a declare or binding argument) becomes in the document. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
