-- An operator's role (operator or admin): the admin pages and menu are for admins only.
ALTER TABLE sessions ADD COLUMN role text;
