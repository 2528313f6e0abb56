import { randomUUID } from "node:crypto";

/**
 * An error answered in IoT Hub's shape: `{"Message":"ErrorCode:<code>;<text>","ExceptionMessage":…}`. The
 * service SDK reads the code and text out of `Message` (azure-iot-http-base parseErrorBody) and picks its
 * error class from the status (404 + DeviceNotFound → DeviceNotFoundError, 409, 412, …).
 */
export class ServiceError extends Error {
  constructor(
    readonly status: number,
    /** IoT Hub's ErrorCode name, e.g. DeviceNotFound. */
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
    this.name = "ServiceError";
  }
}

export interface IotHubErrorBody {
  Message: string;
  ExceptionMessage: string;
  ErrorCode: string;
}

export function errorBody(err: ServiceError, now = new Date()): IotHubErrorBody {
  return {
    Message: `ErrorCode:${err.errorCode};${err.message}`,
    ExceptionMessage: `Tracking ID:${randomUUID().replace(/-/g, "")}-G:0-TimeStamp:${now.toISOString()}`,
    ErrorCode: err.errorCode,
  };
}

export const notFound = (id: string): ServiceError =>
  new ServiceError(404, "DeviceNotFound", `Device ${id} is not registered; create it with PUT /devices/${id}`);

export const moduleNotFound = (id: string): ServiceError =>
  new ServiceError(404, "ModuleNotFound", `Module ${id} is not registered; create it with PUT /devices/{id}/modules/{mid}`);

export const badRequest = (field: string, what: string): ServiceError =>
  new ServiceError(400, "ArgumentInvalid", `${field} ${what}`);
