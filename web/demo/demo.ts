import { connect } from "../src/index.js"; console.log(connect);
