/** go-plugin's side services (`package plugin`), one namespace for the three generated modules. */
export { Empty, GRPCController } from './generated/grpc_controller.js'
export { GRPCStdio, StdioData, StdioData_Channel } from './generated/grpc_stdio.js'
export { ConnInfo, ConnInfo_Knock, GRPCBroker } from './generated/grpc_broker.js'
