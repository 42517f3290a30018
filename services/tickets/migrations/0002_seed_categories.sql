-- The categories a hosting provider's clients ask about; admins add more with POST /v1/categories.
INSERT INTO categories (name) VALUES
    ('Correo electrónico'),
    ('Dominios y DNS'),
    ('Hosting / sitio web'),
    ('Bases de datos'),
    ('Certificados SSL'),
    ('Facturación'),
    ('Consulta comercial'),
    ('Otros')
ON CONFLICT DO NOTHING;
