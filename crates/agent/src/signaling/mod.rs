//! Our Socket.IO client over websocket, for the subset the doorbell uses. (In progress.)
