import { resolveConnectionOptions } from '../../amqp/url';
import type { AmqpConnectionHost } from '../amqp.connection-host';
import type { AmqpServer } from '../server/amqp.server';
import { TopologyPlan } from '../topology/topology-plan';
import { buildAsyncApi } from './asyncapi-builder';
import type { AsyncApiDocument, AsyncApiInfo } from './asyncapi-document';

/**
 * The AsyncAPI 3.0 document of one connection's messaging: its exchanges and queues (retry queues and parking lots
 * too) as channels with their AMQP bindings, every handler of the DI-managed `AmqpServer` as a receive operation
 * (requests with their reply), every publisher and the module's client as send operations, and the payload schemas
 * the handlers declare. Inject it (`app.get(AmqpAsyncApi)`, or `getAmqpAsyncApiToken(name)` for a named connection).
 *
 * It describes the handlers registered so far: Nest registers them when the microservice is initialised or starts
 * listening (`app.init()`, `app.listen()`, `app.startAllMicroservices()`). To make the document without a broker, use
 * `generateAsyncApi` or the `warren asyncapi` command.
 */
export class AmqpAsyncApi {
  /** @internal made by AmqpModule for each connection */
  constructor(
    private readonly host: AmqpConnectionHost,
    private readonly server: AmqpServer,
  ) {}

  /**
   * The document, planned afresh from the app's options and handlers (what `listen` declares), so it is the same
   * before and after the broker is reached. `info` defaults to the connection's `connectionName` (or name) and
   * version '0.0.0'. A handler option that start-up would refuse (a bad schema, a conflicting queue) throws the same
   * ConfigError here.
   */
  document(info: Partial<AsyncApiInfo> = {}): AsyncApiDocument {
    const options = this.host.options;
    const publishers = this.host.publisherDefinitions();
    const plan = new TopologyPlan();
    // What the connection declares when it starts (the module's topology, then the publishers' exchanges), then what
    // the server declares on listen (which repeats the module's topology: the plan merges identical definitions).
    plan.add(options.topology, 'module options');
    for (const p of publishers) plan.exchange(p.exchange, `publisher '${p.name}'`);
    const consumers = this.server.planConsumers(plan);
    return buildAsyncApi(
      {
        connection: this.host.name,
        endpoints: resolveConnectionOptions(options).endpoints,
        topology: plan.contents(),
        consumers,
        publishers,
        client: options.client,
      },
      {
        title: info.title ?? options.connectionName ?? this.host.name,
        version: info.version ?? '0.0.0',
        ...(info.description !== undefined ? { description: info.description } : {}),
      },
    );
  }
}
