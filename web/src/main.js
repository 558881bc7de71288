// Entry point of app.js: both HTML shells load it; <body data-page> says which page.
import { indexPage } from './index-page.js';
import { notePage } from './note-page.js';

const app = document.getElementById('app');
if (document.body.dataset.page === 'note') notePage(app);
else indexPage(app);
